"""`ray job submit --working-dir . -- python jobs/ablate.py search_spaces/ablation_<factor>.yaml --storage URI …`:
`mate ablate` (a grid over its seeds, then the ablation table) on the cluster the job runs in."""

import sys

from _job import run

if __name__ == "__main__":
    sys.exit(run(["ablate"], sys.argv[1:], ray_address=True))
