"""Checks that every core list a header defines (MINT_CORES_<PATH>, mint/core/compiled.hpp) is
named after the header's path, expanded with MINT_CORE in that header, instantiated by one of
include/mint/src/*.hpp, and compiled by the project's build (src/meson.build). A list missed
here would leave separately compiled programs with undefined references. Also that every
out-of-class definition of a listed core's function sits inside #if MINT_CORE_BODIES, so units
that do not compile the cores never parse it (mint/core/compiled.hpp)."""
import pathlib
import re
import sys

include, meson_build = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]).read_text()
instantiated = set()
for part in (include / "src").glob("*.hpp"):
    instantiated |= set(re.findall(r"^(MINT_CORES_\w+)\(MINT_INSTANTIATE\)", part.read_text(), re.M))


def unguarded_definitions(text, name):
    """(line, core) for each `template <...>` + `R core<...>::f(` definition of a core the list
    `name` names that is outside an #if MINT_CORE_BODIES block."""
    macro = re.search(rf"^#define {name}\(CORE\)((?:.*\\\n)*.*)", text, re.M).group(1)
    cores = {c.split("::")[-1] for c in re.findall(r"(?:struct|class)\s+([\w:]+)<", macro)}
    cores |= {c.split("::")[-1] for c in re.findall(r"MINT_CORE_FD2?\(CORE,\s*([\w:]+)\)", macro)}
    if not cores:
        return []
    definition = re.compile(r"^\S.*\b(" + "|".join(sorted(cores)) + r")<[^;{]*?>::~?\w+\s*\(")
    found, guarded, previous = [], False, ""
    for number, line in enumerate(text.split("\n"), 1):
        if line.startswith("#if MINT_CORE_BODIES"):
            guarded = True
        elif line.startswith("#endif  // MINT_CORE_BODIES"):
            guarded = False
        m = definition.match(line)
        if m and previous.startswith("template") and not guarded:
            found.append((number, m.group(1)))
        previous = line
    return found


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
        problems += [f"{relative}:{line}: {core}'s function defined outside #if MINT_CORE_BODIES"
                     for line, core in unguarded_definitions(header.read_text(), name)]
for problem in problems:
    print(problem)
print(f"{lists} core lists, {len(problems)} problems")
sys.exit(1 if problems else 0)
