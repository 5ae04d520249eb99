#!/usr/bin/env bash
# Install the Triton Inference Server the tests and `bench fleet` start: the nvidia-pytriton wheel (it bundles
# tritonserver 2.51.0 and its python backend) with ONNX Runtime, in a venv of its own (.venv-triton), because
# the wheel needs numpy<2 and the project's venv has numpy 2. setup.sh runs it; it runs alone too.
# A second run checks a digest and returns. Where the wheel does not exist (not Linux x86_64) it says so and
# installs nothing: the Triton tests then skip and say why.
#
# Environment: SPLITCOMP_TRITON_VENV (default .venv-triton), PYTHON (default python3).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${SPLITCOMP_TRITON_VENV:-$root/.venv-triton}
python=${PYTHON:-python3}
requirements=$root/requirements/triton.txt

say() { printf '[triton] %s\n' "$*"; }

if [[ $(uname -s)-$(uname -m) != Linux-x86_64 ]]; then
  say "nvidia-pytriton has wheels for Linux x86_64 only, this is $(uname -s) $(uname -m): no Triton server, its tests skip"
  exit 0
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  say "requirements/triton.txt is pinned for Python 3.11, $("$python" --version 2>&1) found: set PYTHON=/path/to/python3.11 (its tests skip until then)"
  exit 0
fi
stamp=$venv/.splitcomp-deps
want=$(cd "$root" && sha256sum requirements/triton.txt scripts/triton_venv.sh | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  say "Triton server up to date in $venv"
  exit 0
fi
say "installing the Triton server (nvidia-pytriton) and ONNX Runtime into $venv"
"$python" -m venv "$venv"
touch "$venv/COLCON_IGNORE"
"$venv/bin/python" -m pip install -q --upgrade "pip==25.3"
"$venv/bin/python" -m pip install -q -r "$requirements"
echo "$want" >"$stamp"
