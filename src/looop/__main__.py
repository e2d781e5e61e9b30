"""`python -m looop` runs the same CLI as the `looop` console script."""

from looop.home.boot import main

if __name__ == "__main__":
    main()
