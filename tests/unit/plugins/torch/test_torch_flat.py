"""Output flattening and input passing in the torch source (buildsys_torch.flat)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from buildsys_torch.flat import call, flat_module, flatten, output_names


def test_nested_outputs_flatten_fully_with_dotted_names_and_skip_none():
    a, b, c, d = (torch.full((1,), float(i)) for i in range(4))
    outputs = {"logits_per_image": a, "loss": None,
               "text_model_output": {"last_hidden_state": b, "hidden_states": (c, d)}}
    assert output_names(outputs) == ["logits_per_image", "text_model_output.last_hidden_state",
                                     "text_model_output.hidden_states.0", "text_model_output.hidden_states.1"]
    assert [t.item() for t in flatten(outputs)] == [0.0, 1.0, 2.0, 3.0]
    assert output_names((a, (b, c))) == ["output_0", "output_1", "output_2"]
    assert output_names(a) == ["output"]


class Reordered(torch.nn.Module):
    """forward()'s parameters in another order than the manifest's inputs."""

    def forward(self, attention_mask, input_ids):
        return {"out": input_ids * 10 + attention_mask}


def test_inputs_reach_forward_by_name_where_forward_names_them():
    ids, mask = torch.tensor([1]), torch.tensor([2])
    assert call(Reordered(), ["input_ids", "attention_mask"], (ids, mask))["out"].item() == 12
    assert flat_module(Reordered(), ["input_ids", "attention_mask"])(ids, mask)[0].item() == 12
    # names forward() does not have: positional, as before
    assert call(Reordered(), ["a", "b"], (ids, mask))["out"].item() == 21
