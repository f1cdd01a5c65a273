"""`python -m service` is the `casevars` command."""

import sys

from service.cli.main import main

sys.exit(main())
