"""Training side of omgen: data loading (``train.data``) and, later, the loop.

The training code imports the *generated* OM modules; it never imports the
compiler.
"""
