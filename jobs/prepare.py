"""`ray job submit --working-dir . -- python jobs/prepare.py SPACE --data URI --storage URI`: the prepare stage
alone (pack, evaluators, segmentation, localization, text features), published to the storage, so a later sweep
or several sweeps over the same data start training at once."""

import sys

from _job import run

if __name__ == "__main__":
    sys.exit(run(["sweep", "--prepare-only"], sys.argv[1:], ray_address=True))
