from pgtrigger.cli import main

main()
