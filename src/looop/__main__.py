"""`python -m looop` runs the same CLI as the `looop` console script."""

from looop.verbs.console import main

if __name__ == "__main__":
    main()
