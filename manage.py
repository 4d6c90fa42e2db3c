#!/usr/bin/env python
"""Django's management commands from a checkout (installed: `gpuniq-manage`)."""

from gpuniq_site.manage import main

if __name__ == "__main__":
    main()
