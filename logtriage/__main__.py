"""python -m logtriage"""

from logtriage.cli import main

main()
