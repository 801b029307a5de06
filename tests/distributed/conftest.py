"""Engine sessions of the adapter tests: ONE Spark session for all of test_spark.py (its
start-up costs ~11 s on a quiet machine), stopped when the module ends so that its JVM does not
idle beside the rest of the suite (the only module using it)."""
import pytest


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession
    session = (SparkSession.builder.master("local[2]").appName("fastengage-tests")
               .config("spark.sql.session.timeZone", "UTC")
               # small Arrow batches: customers straddle batch boundaries
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "500")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.memory", "1g")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
