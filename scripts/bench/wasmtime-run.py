#!/usr/bin/env python3
"""The code interpreter's reference point for `cargo xtask bench`: WASI
modules run by wasmtime (a JIT compiler, through its Python package).

usage: wasmtime-run.py --serve
       wasmtime-run.py MODULE.wasm ARG...

With --serve it reads one JSON request per line on stdin,
{"module": PATH, "argv": [...]}, and answers each with one JSON line:
{"compile_ms": ms spent compiling the module (0 once it is cached),
"run_ms": ms to instantiate and run it, "stdout": its output} or
{"error": message}. Each module is compiled once and instantiated per run
with a fresh store and an empty scratch directory at /tmp, as the runtime's
sandbox does. Without --serve it runs MODULE once and prints the same line.
"""

import json
import os
import sys
import tempfile
import time

import wasmtime

ENGINE = wasmtime.Engine()
MODULES: dict = {}


def run(module_path: str, argv: list) -> dict:
    compile_ms = 0.0
    module = MODULES.get(module_path)
    if module is None:
        t = time.perf_counter()
        module = wasmtime.Module.from_file(ENGINE, module_path)
        compile_ms = (time.perf_counter() - t) * 1e3
        MODULES[module_path] = module
    with tempfile.TemporaryDirectory() as scratch:
        out_path = os.path.join(scratch, ".stdout")
        t = time.perf_counter()
        linker = wasmtime.Linker(ENGINE)
        linker.define_wasi()
        store = wasmtime.Store(ENGINE)
        wasi = wasmtime.WasiConfig()
        wasi.argv = argv
        wasi.stdout_file = out_path
        wasi.preopen_dir(scratch, "/tmp")
        store.set_wasi(wasi)
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)["_start"](store)
        except wasmtime.ExitTrap as e:
            if e.code != 0:
                return {"error": f"the module exited with {e.code}"}
        run_ms = (time.perf_counter() - t) * 1e3
        with open(out_path) as f:
            stdout = f.read()
    return {"compile_ms": compile_ms, "run_ms": run_ms, "stdout": stdout}


def main() -> None:
    if sys.argv[1:] == ["--serve"]:
        for line in sys.stdin:
            try:
                req = json.loads(line)
                reply = run(req["module"], req["argv"])
            except Exception as e:  # the bench reports it and stops
                reply = {"error": repr(e)}
            print(json.dumps(reply), flush=True)
    elif len(sys.argv) >= 3:
        print(json.dumps(run(sys.argv[1], sys.argv[2:])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
