"""``ownchat run``: a YAML recipe ties the stages together in one resumable, content-hashed run.

    from ownchat.recipe import load_recipe, plan_recipe, run_recipe
"""

from ownchat.recipe.api import Plan, plan_recipe, rebuild_report, run_recipe
from ownchat.recipe.load import RecipeError, load_recipe, parse_recipe
from ownchat.recipe.plan import Estimate, Speeds, Stage, StageContext, StageResult
from ownchat.recipe.schema import Recipe

__all__ = ["Estimate", "Plan", "Recipe", "RecipeError", "Speeds", "Stage", "StageContext", "StageResult",
           "load_recipe", "parse_recipe", "plan_recipe", "rebuild_report", "run_recipe"]
