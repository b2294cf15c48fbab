"""Checks that every core list a header defines (MINT_CORES_<PATH>, mint/core/compiled.hpp) is
named after the header's path, expanded with MINT_CORE in that header, instantiated by one of
include/mint/src/*.hpp, and compiled by the project's build (src/meson.build). A list missed
here would leave separately compiled programs with undefined references."""
import pathlib
import re
import sys

include, meson_build = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]).read_text()
instantiated = set()
for part in (include / "src").glob("*.hpp"):
    instantiated |= set(re.findall(r"^(MINT_CORES_\w+)\(MINT_INSTANTIATE\)", part.read_text(), re.M))
problems, lists = [], 0
for header in sorted(include.rglob("*.hpp")):
    relative = header.relative_to(include).as_posix()
    for name in re.findall(r"^#define (MINT_CORES_\w+)\(CORE\)", header.read_text(), re.M):
        lists += 1
        expected = "MINT_CORES_" + re.sub(r"\W", "_", relative.removesuffix(".hpp")).upper()
        if name != expected:
            problems.append(f"{relative}: list {name} should be named {expected}")
        if f"{name}(MINT_CORE)" not in header.read_text():
            problems.append(f"{relative}: {name} is not expanded with MINT_CORE")
        if name not in instantiated:
            problems.append(f"{relative}: {name} is not instantiated by any include/mint/src/*.hpp")
        if f"'{relative}'" not in meson_build:
            problems.append(f"{relative}: not in mint_core_headers (src/meson.build)")
for problem in problems:
    print(problem)
print(f"{lists} core lists, {len(problems)} problems")
sys.exit(1 if problems else 0)
