"""`ray job submit --working-dir . -- python jobs/segment.py --data DIR --backend rules|truth`: segment a dataset's
captions on the cluster. The LLM backend is refused here: the OpenAI key never goes into a job's runtime
environment (docs/architecture.md §8). Run `mate segment --backend openai --data DIR --storage s3://…` where the key is;
a sweep with that --storage picks the published answers up."""

import sys

from _job import run


def refuse_llm(args: list[str]) -> None:
    joined = " ".join(args)
    if "--backend openai" in joined or "--backend=openai" in joined or "segment.backend=openai" in joined:
        sys.exit("jobs/segment.py: the openai backend runs where the API key is, never in a cluster job: "
                 "mate segment --backend openai --data DIR --storage s3://… on your machine publishes the answers")


if __name__ == "__main__":
    refuse_llm(sys.argv[1:])
    sys.exit(run(["segment"], sys.argv[1:]))
