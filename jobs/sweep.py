"""`ray job submit --working-dir . -- python jobs/sweep.py SPACE [--data URI] [--storage URI] [--tracking-uri URL]
[--gpus-per-trial 0.5] …`: `mate sweep` on the cluster the job runs in (every `mate sweep` flag works)."""

import sys

from _job import run

if __name__ == "__main__":
    sys.exit(run(["sweep"], sys.argv[1:], ray_address=True))
