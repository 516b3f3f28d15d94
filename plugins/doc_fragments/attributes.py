# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Modules that change state: real check mode (the plan) and diff mode.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: In check mode the module returns the plan it would run and changes nothing.
    support: full
  diff_mode:
    description: Returns before/after details in diff mode.
    support: full
"""

    # Read-only modules: they run the same in check mode and have nothing to diff.
    INFO_MODULE = r"""
attributes:
  check_mode:
    description: The module only reads, so it runs normally in check mode.
    support: full
  diff_mode:
    description: The module changes nothing, so there is no diff.
    support: none
"""
