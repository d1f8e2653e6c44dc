/**
 * {@code usp4j launch}'s engine: a {@link org.usp4j.dist.launch.LaunchPlan} (processes per node, nodes,
 * master address, token) run by a {@link org.usp4j.dist.launch.ProcessLauncher}, which starts one process
 * per local rank with its rank environment, prefixes their output with {@code [rank k]}, stops the others
 * when one fails or the launcher is signalled, and reports a {@link org.usp4j.dist.launch.LaunchOutcome}.
 */
package org.usp4j.dist.launch;
