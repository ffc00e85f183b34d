"""What the wheel holds: the card's rooms, their data files, and the top-level templates/ folder
installed as `gateway_site/templates` (settings.TEMPLATES_DIR finds it there).
tests/test_packaging.py builds the wheel and checks this list against the tree."""

from setuptools import find_packages, setup

ROOMS = ["gateway_site", "tenants", "routing", "audit", "billing", "mock_provider"]
PACKAGES = [
    *find_packages(include=[f"{room}*" for room in ROOMS], exclude=["*.tests", "*.tests.*"]),
    "gateway_site.templates",
]

setup(
    packages=PACKAGES,
    package_dir={"gateway_site.templates": "templates"},
    package_data={
        "gateway_site.templates": ["**/*.html"],
        "gateway_site.console": ["static/**/*"],
        "audit": ["static/**/*"],
        # OpenAI's tokenizer files and their licence: token counts never need the network.
        "tenants.quotas": ["encodings/*.tiktoken", "encodings/LICENSE", "encodings/README.md"],
        # The shipped starting price list.
        "billing": ["data/*.yaml"],
        # The injection classifier's weights (docs/injection-classifier.md).
        "routing.guardrails": ["core/models/*.npy", "core/models/*.json", "core/models/*.npz"],
        # The semantic cache's labelled calibration pairs (manage.py cache_calibrate).
        "routing.cache": ["data/*.jsonl"],
    },
)
