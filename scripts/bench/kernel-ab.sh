#!/bin/bash
# Generation speed of two llmos kernels, alternating: each round boots each
# kernel (QEMU direct boot, TCG, -smp 2 -m 1024M, the bench's section-3
# initrd: the runtime and the tiny model) and times three 32-token
# completions over the API with curl. Prints one line per request.
#
#   scripts/bench/kernel-ab.sh KERNEL_A KERNEL_B ROUNDS [INITRD]
#
# Run `cargo xtask bench --quick --section 3` once first: it writes the
# initrd (target/bench/vs-linux.cpio). Logs go to target/bench/ab/.
set -euo pipefail
a=$1 b=$2 rounds=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
initrd=${4:-$root/target/bench/vs-linux.cpio}
logs=$root/target/bench/ab
mkdir -p "$logs"
body='{"prompt":"Once upon a time","max_tokens":32,"temperature":0,"ignore_eos":true}'
for r in $(seq 1 "$rounds"); do
  for k in "$a" "$b"; do
    port=$((20000 + RANDOM % 20000))
    log=$logs/$(basename "$k")-$r.log
    rm -f "$log"
    qemu-system-x86_64 -machine q35 -accel tcg -cpu max -smp 2 -m 1024M -no-reboot \
      -display none -serial "file:$log" -monitor none \
      -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$k" -initrd "$initrd" \
      -netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:8080" \
      -device virtio-net-pci,netdev=net0 2>/dev/null &
    qemu=$!
    for _ in $(seq 1 240); do grep -q "llmos: ready" "$log" 2>/dev/null && break; sleep 0.5; done
    key=$(grep -o "llmos-[0-9a-f]\{32\}" "$log" | head -1)
    for n in 1 2 3; do
      start=$(date +%s.%N)
      tokens=$(curl -s -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        -d "$body" "http://127.0.0.1:$port/v1/completions" |
        python3 -c 'import sys, json; print(json.load(sys.stdin)["usage"]["completion_tokens"])')
      end=$(date +%s.%N)
      echo "$(basename "$k") round $r request $n: $(python3 -c "print(round($tokens / ($end - $start), 3))") tok/s"
    done
    kill "$qemu"
    wait "$qemu" 2>/dev/null || true
  done
done
