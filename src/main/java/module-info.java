/**
 * usp4j: sequence-parallel attention (Ulysses, Ring and their USP hybrid), forward and backward, on
 * in-process CPU or CUDA ranks or over NCCL, for JVM programs that hold their tensors sharded by sequence.
 *
 * <p>The API is two packages: {@link org.usp4j.api} (entry points, worlds and ranks, attention layers,
 * options) and {@link org.usp4j.tensor} (the views of the caller's host or device memory that layers read
 * and write). Every other package, the generated native bindings included, is internal and may change
 * in any release.
 */
// XChart (static, for the CLI's plots) and ojAlgo 55 (the planner's solver) have no module descriptor yet
@SuppressWarnings("requires-automatic")
module org.usp4j {
    requires jdk.incubator.vector;
    requires org.apache.logging.log4j;
    requires com.fasterxml.jackson.databind;
    requires ojalgo;
    // The command line's own dependencies: absent from programs that only embed the library.
    requires static info.picocli;
    requires static org.knowm.xchart;

    exports org.usp4j.api;
    exports org.usp4j.tensor;

    // picocli sets the commands' option fields; Jackson writes the commands' and the info report's records.
    opens org.usp4j.cli to info.picocli, com.fasterxml.jackson.databind;
    opens org.usp4j.info to com.fasterxml.jackson.databind;
}
