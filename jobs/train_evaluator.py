"""`ray job submit --working-dir . --entrypoint-num-gpus 1 -- python jobs/train_evaluator.py --data DIR
[--role scoring|partition]`: train a frozen retrieval evaluator into the head's workspace (a sweep's prepare stage
then finds it cached). Runs in the job's driver process: ask `--entrypoint-num-gpus` for a GPU."""

import sys

from _job import run

if __name__ == "__main__":
    sys.exit(run(["evaluator", "train"], sys.argv[1:]))
