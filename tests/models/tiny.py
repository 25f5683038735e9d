"""Tiny torch models for the tests, good and broken."""

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def build():
    torch.manual_seed(0)
    return MLP()


class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 4)  # expects 10 features; the manifest declares 8

    def forward(self, x):
        return self.fc(x)


def wide():
    torch.manual_seed(0)
    return Wide()


def unseeded():
    import os

    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))  # as unseeded code in a fresh process
    return nn.Linear(8, 64, bias=False)  # 64 outputs: two random draws are plainly uncorrelated


def bad_samples():
    rows = [3, 2]
    return [{"x": torch.ones(rows[i], 8)} for i in range(3)]  # one row count short: IndexError


def raises():
    raise ValueError("the config file is missing")


def wrong_type():
    return {"not": "a module"}


class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # a Python branch on tensor data: export cannot trace it
            return x * 2
        return x - 1


def data_dependent():
    return DataDependent()


class FixedBatch(nn.Module):
    """Only works for batch 4: a dim range [1, 8] cannot be honoured."""

    def forward(self, x):
        return x.reshape(4, 8) * 2


def fixed_batch():
    return FixedBatch()


class Noisy(nn.Module):
    """Returns something different every call: validation must catch it."""

    def forward(self, x):
        return x + torch.rand_like(x)


def noisy():
    return Noisy()


def samples():
    return [{"x": torch.ones(3, 8)}, (torch.zeros(1, 8),)]


class Casts(nn.Module):
    """Names float32 in its graph (a factory and a cast) and takes an int64 input: the fp16/bf16
    stages must rewrite the first two and leave the ids alone."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(16, 8)
        self.fc = nn.Linear(8, 4)
        self.register_buffer("scale", torch.full((4,), 0.5))

    def forward(self, x, ids):
        h = x + self.embed(ids).sum(dim=1).to(torch.float32)
        bias = torch.ones(x.shape[0], 4, dtype=torch.float32)
        return {"scores": self.fc(h) * self.scale + bias, "count": (ids > 3).sum(dim=1)}


def casts():
    torch.manual_seed(0)
    return Casts()
