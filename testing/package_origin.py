#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""package_origin.py: every strongSwan plugin and every program that the lab, the demo and the
tests use comes from a Debian package that scripts/bootstrap's list brings in through
Depends/Pre-Depends alone (Recommends are not installed: bootstrap uses --no-install-recommends),
or from an Essential package. Nothing is copied by hand:

- the package list is `scripts/bootstrap --print-packages`;
- the plugins are scripts/lab's load lists (charon's for both datapaths and swanctl's; of the
  plugins it loads only where the release ships them, those this machine has), minus our
  own plugins (the names scripts/lab's plugin_so maps to the build tree), plus every
  LAB_CHARON_LOAD=... a test, the demo or a script sets;
- the programs are the words in command position of the shell scripts (scripts/, testing/,
  src/*/tests/) that resolve on PATH, the absolute paths of existing files they name (e.g.
  /usr/lib/ipsec/charon), the programs the test helpers in Python start (subprocess argument
  lists), and the modules those helpers import; minus our own programs (sbin_PROGRAMS and
  bin_PROGRAMS of the Makefile.am files) and the shell functions the scripts define.

A file that belongs to no package, or to a package outside that closure, fails the check with the
file and its package named. Usage: package_origin.py TOP
"""
import glob
import os
import re
import shutil
import subprocess
import sys

TOP = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
PLUGIN_DIR = "/usr/lib/ipsec/plugins"
SHELL_KEYWORDS = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "in",
                  "case", "esac", "function", "select", "time", "!", "{", "}", "[[", "]]", "coproc"}
# Words that run their arguments as a command: skip them (and their options) to the command.
PREFIXES = {"exec", "command", "env", "nohup", "sudo", "timeout", "nice", "setsid", "xargs"}


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def bootstrap_packages():
    out = run([os.path.join(TOP, "scripts/bootstrap"), "--print-packages"]).stdout.split()
    if not out:
        sys.exit("scripts/bootstrap --print-packages printed no package")
    return out


def closure(packages):
    """Packages reachable through Depends/Pre-Depends, virtual ones by their providers."""
    r = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
             "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] + packages)
    names = set()
    for line in r.stdout.splitlines():
        if line and not line[0].isspace():
            names.add(line.strip("<>").split(":")[0])
    missing = [p for p in packages if p not in names]
    if missing:
        sys.exit("apt-cache knows no package named: " + " ".join(missing))
    return names


def base_system():
    """What every Debian 12 system has: the Essential packages (policy 3.8) and those of priority
    required (debootstrap's minimal base, apt among them)."""
    r = run(["dpkg-query", "-W", "-f", "${Package} ${Essential} ${Priority}\n"])
    return [l.split()[0] for l in r.stdout.splitlines()
            if l.split()[1:2] == ["yes"] or l.endswith(" required")]


def candidates(path):
    """The names dpkg may know a file by: itself, through symlinks (alternatives), /usr merge."""
    cands = [path, os.path.realpath(path)]
    for p in list(cands):
        cands.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
    return cands


def owners(paths):
    """{file: [package, ...]} from one dpkg-query -S call over all names of all paths."""
    names = sorted({c for p in paths for c in candidates(p)})
    known = {}
    r = run(["dpkg-query", "-S"] + names)
    for line in r.stdout.splitlines():
        pkgs, _, f = line.partition(": ")
        if pkgs.startswith("diversion") or f not in names:
            continue
        known[f] = [x.strip().split(":")[0] for x in pkgs.split(",")]
    return known


def our_plugins(lab):
    return set(re.findall(r'^\s*([a-z-]+)\) echo "\$top/src/', lab, re.M))


def plugins():
    lab = read(os.path.join(TOP, "scripts/lab"))
    words = []
    for m in re.findall(r'\b(?:load|datapath)="([^"]*)"', lab):
        words += m.split()
    for m in re.findall(r'\bload = ([^\\"\n]*)', lab):   # swanctl's strongswan.conf (printf)
        words += m.split()
    sources = script_files()
    for f in sources:
        for m in re.findall(r'LAB_CHARON_LOAD="?([a-z0-9 -]+)', read(f)):
            words += m.split()
    for m in re.findall(r'for p in ([a-z0-9 -]+); do\n\s*\[ -e "\$PLUGIN_DIR/libstrongswan-\$p.so" \]', lab):
        words += [w for w in m.split() if os.path.exists(os.path.join(PLUGIN_DIR, "libstrongswan-%s.so" % w))]
    mine = our_plugins(lab)
    names = sorted({w for w in words if not w.startswith("$") and w not in mine})
    if len(names) < 5:
        sys.exit("found only %d stock plugins in scripts/lab: the load lists moved?" % len(names))
    return names


def script_files():
    files = [os.path.join(TOP, "scripts", f) for f in ("lab", "lab-qkd.sh", "demo", "check", "pki", "bootstrap", "package")]
    files += sorted(glob.glob(os.path.join(TOP, "testing", "*.sh")))
    files += sorted(glob.glob(os.path.join(TOP, "testing", "tests", "*.sh")))
    files += sorted(glob.glob(os.path.join(TOP, "src", "**", "tests", "*.sh"), recursive=True))
    return [f for f in files if os.path.isfile(f)]


def python_files():
    files = sorted(glob.glob(os.path.join(TOP, "testing", "*.py")))
    files += sorted(glob.glob(os.path.join(TOP, "src", "**", "tests", "*.py"), recursive=True))
    return [f for f in files if os.path.basename(f) != "package_origin.py"]


def our_programs():
    names = set()
    for mk in glob.glob(os.path.join(TOP, "src", "**", "Makefile.am"), recursive=True):
        for m in re.findall(r'^(?:s?bin|noinst|check)_PROGRAMS\s*=\s*((?:.*\\\n)*.*)', read(mk), re.M):
            names.update(os.path.basename(w) for w in m.replace("\\\n", " ").split())
    return names


def mask(line):
    """The line without its comment, quoted text replaced by '_' except command substitutions
    inside double quotes ("$(cmd ...)" is still a command)."""
    out, q, depth = [], None, 0
    for i, c in enumerate(line):
        if q == "'":
            out.append("_")
            if c == "'":
                q = None
            continue
        if q == '"' and depth == 0:
            if c == '"':
                q = None
                out.append("_")
            elif line.startswith("$(", i):
                depth = 1
                out.append(c)
            else:
                out.append("_")
            continue
        if depth:
            if c == "(" and i > 0 and line[i - 1] == "$":
                depth += 1
            elif c == ")":
                depth -= 1
            out.append(c)
            continue
        if c in "'\"":
            q = c
            out.append("_")
        elif c == "#" and (i == 0 or line[i - 1] in " \t;("):
            break
        else:
            out.append(c)
    return "".join(out)


def shell_commands(text, funcs):
    """Words in command position: start of a line or after | ; && || ( $( ` then do else !,
    past assignments and the prefix words above (with their options and one duration); the
    command of 'ip netns exec NS CMD' and 'lab exec NODE CMD'; the first two arguments of the
    scripts' own functions (wrappers like nsx NODE CMD, check DESCRIPTION CMD, quiet CMD;
    the second only when the first is no program).
    Here-documents are skipped."""
    words = set()
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", lines[i])
        line = mask(lines[i])
        i += 1
        for seg in re.split(r"\|\||&&|[|;`]|\$\(|\(|\bthen\b|\bdo\b|\belse\b", line):
            toks = seg.split()
            while toks:
                t = toks[0]
                if t in ("for", "select"):   # 'for NAME in WORDS': no command in the header
                    toks = []
                    break
                if t in SHELL_KEYWORDS or re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=", t):
                    toks.pop(0)
                elif t in PREFIXES:
                    toks.pop(0)
                    while toks and (toks[0].startswith("-") or re.match(r"^[0-9.]+[smh]?$", toks[0])):
                        toks.pop(0)
                    words.add(t)
                else:
                    break
            if toks:
                words.add(toks[0].strip("\"'"))
            if toks[:3] == ["ip", "netns", "exec"]:
                words.update(toks[4:5])
            elif toks[1:2] == ["exec"]:
                words.update(toks[3:4])
            elif toks and toks[0] in funcs:
                words.update(toks[1:2] if shutil.which(toks[1:2] and toks[1] or "-") else toks[1:3])
        if m:   # skip the here-document's body
            end = m.group(1)
            while i < len(lines) and lines[i].strip() != end:
                i += 1
            i += 1
    return words


def shell_functions(text):
    return set(re.findall(r"^\s*(?:function\s+)?([A-Za-z_][A-Za-z0-9_-]*)\s*\(\)", text, re.M))


def python_programs(text):
    return set(re.findall(r'subprocess\.\w+\([^\[\n]{0,40}\[\s*"([A-Za-z0-9_.+-]+)"', text))


def python_imports(text):
    mods = set()
    for m in re.findall(r"^\s*(?:import ([\w., ]+)|from (\w+)[\w.]* import)", text, re.M):
        for name in (m[0].split(",") if m[0] else [m[1]]):
            mods.add(name.strip().split(" ")[0].split(".")[0])
    return {m for m in mods if m}


def main():
    base = bootstrap_packages()
    allowed = closure(base + base_system())
    print("# bootstrap's list: %d packages; with Depends/Pre-Depends and the base system: %d"
          % (len(base), len(allowed)))
    failures = 0
    items = []   # (what, file)

    names = plugins()
    print("# strongSwan plugins the lab loads: " + " ".join(names))
    for p in names:
        so = os.path.join(PLUGIN_DIR, "libstrongswan-%s.so" % p)
        if not os.path.exists(so):
            print("FAIL - plugin %s: %s does not exist" % (p, so))
            failures += 1
            continue
        items.append(("plugin " + p, so))

    mine = our_programs()
    funcs, cmds, paths = set(), set(), set()
    for f in script_files():
        funcs |= shell_functions(read(f))
    for f in script_files():
        text = read(f)
        cmds |= shell_commands(text, funcs)
        paths |= set(re.findall(r"(?<![\w$}/.])(/(?:usr/)?(?:s?bin|lib|libexec)/[A-Za-z0-9_./+-]+)", text))
    py = python_files()
    pyprogs, pymods = set(), set()
    for f in py:
        text = read(f)
        pyprogs |= python_programs(text)
        pymods |= python_imports(text)
    if py:
        cmds.add("python3")
    cands = sorted({c for c in (cmds | pyprogs) - funcs - mine - SHELL_KEYWORDS
                    if re.match(r"^[A-Za-z0-9_.+-]+$", c)})
    builtins = set(run(["bash", "-c", 'for c; do [ "$(type -t "$c")" = builtin ] && echo "$c"; done',
                        "bash"] + cands).stdout.split())
    progs = {}
    for c in cands:
        where = None if c in builtins else shutil.which(c)
        if where:
            progs[c] = where
    for p in sorted(paths):
        if os.path.isfile(p) and os.access(p, os.X_OK) and os.path.basename(p) not in mine:
            progs[p] = p
    if len(progs) < 10:
        sys.exit("found only %d programs in the scripts: the parser is broken" % len(progs))
    print("# programs: " + " ".join(sorted(progs)))
    items += [("program " + n, w) for n, w in sorted(progs.items())]

    python = shutil.which("python3")
    # modules of this repository (helpers put their folder on sys.path, as testing/bench)
    ours = {os.path.basename(f)[:-3]
            for f in glob.glob(os.path.join(TOP, "**", "*.py"), recursive=True)}
    for mod in sorted(pymods - ours):
        r = run([python, "-c", "import %s; print(getattr(%s, '__file__', None) or '')" % (mod, mod)])
        if r.returncode != 0:
            print("FAIL - python module %s: %s cannot import it" % (mod, python))
            failures += 1
        elif r.stdout.strip():   # built-in modules have no file: part of python3 itself
            items.append(("python module " + mod, r.stdout.strip()))

    known = owners([f for _, f in items])
    for what, f in items:
        pkgs = next((known[c] for c in candidates(f) if c in known), None)
        if not pkgs:
            print("FAIL - %s: %s belongs to no Debian package" % (what, os.path.realpath(f)))
            failures += 1
        elif not any(p in allowed for p in pkgs):
            print("FAIL - %s: %s belongs to package %s, which bootstrap's list does not bring in"
                  % (what, f, ", ".join(pkgs)))
            failures += 1
        else:
            print("ok - %s: %s from %s" % (what, f, ", ".join(pkgs)))
    print("# %d files checked, %d not from bootstrap's packages" % (len(items), failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
