#!/bin/bash
# Demo over seeds 0-5, float32 and bfloat16 mixed precision, one after the other.
cd /work/main
for s in 0 1 2 3 4 5; do
  for mode in fp32 bf16; do
    extra=""; [ $mode = bf16 ] && extra="--mixed-precision"
    out=/tmp/seeds/${mode}_$s; rm -rf $out
    start=$(date +%s.%N)
    build-cpu/tools/fridge_train --out $out --no-progress --init-seed $s $extra > /tmp/seeds/${mode}_$s.log 2>&1
    end=$(date +%s.%N)
    line=$(grep "Validation at" /tmp/seeds/${mode}_$s.log)
    echo "$mode seed $s $(echo "$end - $start" | bc) s: $line" >> /tmp/seeds/summary.txt
    rm -rf $out/demo_data
  done
done
echo done >> /tmp/seeds/summary.txt
