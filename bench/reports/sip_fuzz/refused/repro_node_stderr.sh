#!/usr/bin/env bash
# The fuzz against the bench node answering only 7000 (others 404), node stderr kept.
cd /work/main
rm -f /tmp/bench/node.out /tmp/bench/node.err
mkfifo /tmp/bench/node.in 2>/dev/null || true
(sleep 100000 > /tmp/bench/node.in 2>/dev/null < /dev/null &)
.venv/bin/python -X faulthandler -m bench.sip_media_node --agent echo --answer-only 7000 \
  < /tmp/bench/node.in > /tmp/bench/node.out 2> /tmp/bench/node.err &
NODE=$!
for i in $(seq 1 100); do grep -q sip_port /tmp/bench/node.out 2>/dev/null && break; sleep 0.2; done
PORT=$(grep -m1 -o '"sip_port": [0-9]*' /tmp/bench/node.out | grep -o '[0-9]*$')
echo "node $NODE port $PORT"
for part in 0 1 2 3 4 5 6 7 8 9; do
  .venv/bin/python -m bench.sip_fuzz --target 127.0.0.1:$PORT --count ${COUNT:-100000} --seed $((1000+part)) \
    --tcp 200 --seeds-dir /tmp/torture-seeds | tail -1
  kill -0 $NODE 2>/dev/null || { echo "NODE DIED after part $part"; break; }
done
kill -0 $NODE 2>/dev/null && echo "node alive" && kill $NODE
wait $NODE; echo "node exit $?"
tail -30 /tmp/bench/node.err
