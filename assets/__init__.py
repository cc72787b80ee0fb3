"""Shipped data, installed as the package ``anchorsplat.assets``; find files with
:func:`anchorsplat.gaussians.assets.asset_path`."""
