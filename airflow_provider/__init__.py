"""Apache Airflow provider for the Meta bulk engine: a ``meta_graph`` connection type, deferrable bulk
operators and wait-only triggers. It adapts, never decides: every Graph call goes through ``bulk_engine``.

Import the classes from their modules (``airflow_provider.operators``, ``.hooks``, ``.triggers``); this
package stays import-light because Airflow loads ``get_provider_info`` while reading its configuration.
"""
