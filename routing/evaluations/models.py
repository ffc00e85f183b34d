"""Task categories, and how well each deployment does at each one (docs/routing.md#categories).

A route with the "category" strategy sends a request of a category to the cheapest deployment
whose latest evaluation score for that category reaches the category's threshold.
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from routing.models import Deployment

_UNIT = [MinValueValidator(0.0), MaxValueValidator(1.0)]
# A task category's name, wherever one is given (config, API, evaluation sets).
CATEGORY_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class TaskCategory(models.Model):
    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=300, blank=True, default="")
    # The lowest latest score (0..1) a deployment needs to serve this category first.
    threshold = models.FloatField(validators=_UNIT)
    # Strict: never fall back to a deployment below the threshold (the request fails instead).
    strict = models.BooleanField(default=False)
    # A request that names no category gets the first category (by priority) whose pattern
    # matches its last user message (a case-insensitive regular expression; blank: none).
    pattern = models.CharField(max_length=500, blank=True, default="")
    priority = models.PositiveSmallIntegerField(default=100)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]
        verbose_name_plural = "task categories"

    def __str__(self) -> str:
        return self.name


class EvalRun(models.Model):
    """One run of an evaluation set against candidate deployments."""

    eval_set = models.CharField(max_length=300)  # the file's name, as given
    eval_set_sha256 = models.CharField(max_length=64)
    items = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    # Who started it, as the activity log names actors.
    actor = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.eval_set} @ {self.started_at:%Y-%m-%d %H:%M}"


class EvalScore(models.Model):
    """A deployment's score on one category in one run: the share of items answered right."""

    run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="scores")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="+")
    category = models.SlugField(max_length=64)
    score = models.FloatField(validators=_UNIT)
    samples = models.PositiveIntegerField()
    passed = models.PositiveIntegerField()
    errors = models.PositiveIntegerField(default=0)  # items the deployment failed to answer
    measured_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["deployment", "category", "-measured_at"])]

    def __str__(self) -> str:
        return f"{self.deployment_id}/{self.category}: {self.score:.2f}"
