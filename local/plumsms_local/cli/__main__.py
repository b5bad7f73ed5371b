"""``python -m plumsms_local.cli``: the same as ``smsctl``."""

from plumsms_local.cli import main

raise SystemExit(main())
