"""`python -m mailproxy_lint`."""
from mailproxy_lint.cli import main

raise SystemExit(main())
