"""Sacred ingredients (dataset, model, training) and the observers every experiment shares."""

import warnings

# sacred 0.8.7 imports pkg_resources (pinned setuptools<81); its deprecation warning is not ours to fix
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
