"""`bench/symbol_order.py`'s reading of a callgrind profile: the list the release link orders the
gateway's code by (`crates/sluice/build.rs`) must hold exactly the binary's functions that ran,
by their own instructions, whatever callgrind's name compression does."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from symbol_order import ran_functions  # noqa: E402

# callgrind's format with `--compress-strings=yes` (its default): a name is spelled out at its
# first use, in `fn=` or `cfn=` (objects likewise in `ob=` or `cob=`), and later by its number
# alone. The cost line after `calls=` is the call's inclusive cost, not the caller's own.
PROFILE = """\
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  /tmp/x/sluice --config c.yaml
events: Ir
ob=(1) /tmp/x/sluice
fl=(1) ???
fn=(1) _ZN4wire4scan17h0123456789abcdefE
0 100
+1 50
cob=(2) /usr/lib/x86_64-linux-gnu/libc.so.6
cfi=(2) ???
cfn=(2) memcpy
calls=1 0
0 1000
* 7
cob=(1)
cfn=(3) _ZN6server5serve17hfedcba9876543210E
calls=2 0
0 5000
fn=(3)
0 400
fn=(4) _ZN6server5serve17hfedcba9876543210E'2
-1 60
fn=(5) 0x0000000000401000
0 3
fn=(6) (below main)
0 9
ob=(2)
fl=(2)
fn=(2)
0 999
ob=(1)
fl=(1)
fn=(1)
0 1
"""


def test_a_profile_gives_each_function_of_the_binary_its_own_instructions(tmp_path):
    profile = tmp_path / "callgrind.out"
    profile.write_text(PROFILE)
    cost = ran_functions(profile, "/tmp/x/sluice")
    assert cost == {
        # 100 + 50 + 7 + 1: the calls' 1,000 and 5,000 are memcpy's and serve's, not scan's.
        "_ZN4wire4scan17h0123456789abcdefE": 158,
        # First named in a `cfn=`; its recursion level ('2) is the same symbol.
        "_ZN6server5serve17hfedcba9876543210E": 460,
    }


def test_another_objects_functions_are_not_listed(tmp_path):
    profile = tmp_path / "callgrind.out"
    profile.write_text(PROFILE)
    assert ran_functions(profile, "/usr/lib/x86_64-linux-gnu/libc.so.6") == {"memcpy": 999}
    assert ran_functions(profile, "/tmp/y/other") == {}
