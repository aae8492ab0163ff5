from tailwinds.cli import main

main()
