"""The library behind the scripts at the top level, one room per concern: the README's Layout lists them."""
