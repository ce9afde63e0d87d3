"""The migration campaign (chart 1): phases, activities, waves, gates, schedule, shutdown."""
