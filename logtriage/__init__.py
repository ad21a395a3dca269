"""logtriage: reads all the logs of an outage at once and ranks why the site is down."""

__version__ = "0.1.0"
