#!/usr/bin/env bash
# Where does the step export's 'batch != 1' guard come from on the GPU image (torch 2.11,
# transformers 5.17)? Build a tiny decoder's step with torch's guard logging, print the guard's source.
set -uo pipefail
export PYTHONPATH=/tmp/site:$PWD/tests/models BUILDSYS_OUT=/tmp/probe PYTHONUNBUFFERED=1
cd /tmp/repo 2>/dev/null || { python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl; cp -r . /tmp/repo; cd /tmp/repo; python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null; }
cp -r $OLDPWD/plugins $OLDPWD/bench . 2>/dev/null
export PYTHONPATH=/tmp/site:/tmp/repo/tests/models
for family in ${FAMILIES:-qwen2 llama}; do
  d=/tmp/probe-$family; rm -rf $d; mkdir -p $d
  python3 -c "from tiny_decoders import save_decoder; save_decoder(__import__('pathlib').Path('$d/lm'), '$family', positions=64)"
  printf 'schema: 1\nname: p\nversion: "1"\nmodel:\n  framework: huggingface\n  id: lm\n  task: text-generation\ntargets:\n  exported: {format: torch.exported}\n' > $d/m.yaml
  TORCH_LOGS="+dynamic" python3 -m buildsys build $d/m.yaml -q > $d/out.txt 2>&1
  echo "== $family rc=$?"; tail -n 3 $d/out.txt | cut -c1-300
  log=$(ls /tmp/probe/.cache/logs/torch.export-*.log 2>/dev/null | tail -1)
  grep -h "guard added" $d/out.txt $log 2>/dev/null | grep "!= 1\|Ne(\|> 1" | cut -c1-500 | head -8
  rm -rf /tmp/probe/.cache/logs
done
