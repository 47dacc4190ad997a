"""Runs one test of a CTest build folder by hand, as ctest would (its command, working folder
and environment), optionally under a wrapper such as compute-sanitizer; exits with its status.

Usage: python3 scripts/ctest_run.py BUILD_DIR TEST_NAME [WRAPPER [WRAPPER_ARGS...]]
e.g.   python3 scripts/ctest_run.py build-gpu tensor_cuda.Cuda.TransfersRoundTrip \
           compute-sanitizer --tool memcheck
"""
import json
import os
import subprocess
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    build, name, wrapper = sys.argv[1], sys.argv[2], sys.argv[3:]
    listing = subprocess.run(["ctest", "--test-dir", build, "--show-only=json-v1"],
                             capture_output=True, text=True, check=True)
    tests = [t for t in json.loads(listing.stdout)["tests"] if t["name"] == name]
    if not tests:
        sys.exit(f"ctest_run: no test named {name} in {build}")
    test = tests[0]
    env = dict(os.environ)
    cwd = None
    for prop in test.get("properties", []):
        if prop["name"] == "ENVIRONMENT":
            for item in prop["value"]:
                key, _, value = item.partition("=")
                env[key] = value
        elif prop["name"] == "WORKING_DIRECTORY":
            cwd = prop["value"]
    command = wrapper + test["command"]
    print("ctest_run:", " ".join(command), flush=True)
    sys.exit(subprocess.run(command, cwd=cwd, env=env).returncode)


if __name__ == "__main__":
    main()
