namespace Loop.Docker;

using global::Docker.DotNet;
using global::Docker.DotNet.Models;
using Microsoft.Extensions.Logging;

/// <summary>Removes containers left behind by a daemon that crashed mid-run, found by their labels.</summary>
public sealed partial class ContainerReaper(DockerEngine engine, ILogger<ContainerReaper> logger)
{
    /// <summary>Force-removes every container (running or not) carrying all of <paramref name="labels"/>;
    /// returns how many were removed.</summary>
    /// <exception cref="DockerUnavailableException">The engine cannot be reached.</exception>
    public async Task<int> ReapAsync(IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        if (labels.Count == 0)
        {
            // An empty filter matches every container on the host, Loop's or not.
            throw new ArgumentException("at least one label is needed to tell Loop's containers apart", nameof(labels));
        }

        var docker = await engine.ConnectAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var removed = 0;
            var filter = new ContainersListParameters
            {
                All = true,
                Filters = new Dictionary<string, IDictionary<string, bool>>
                {
                    ["label"] = labels.ToDictionary(l => $"{l.Key}={l.Value}", _ => true),
                },
            };
            foreach (var container in await docker.Containers.ListContainersAsync(filter, cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    await docker.Containers.RemoveContainerAsync(container.ID, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, cancellationToken).ConfigureAwait(false);
                }
                catch (DockerContainerNotFoundException)
                {
                    // Gone already (removed by its own run as we listed): nothing left to reap.
                    continue;
                }
                LogReaped(container.ID, container.State);
                removed++;
            }

            return removed;
        }
        catch (Exception e) when (DockerEngine.IsUnreachable(e))
        {
            throw engine.Unreachable(e);
        }
    }

    [LoggerMessage(LogLevel.Information, "Reaped orphaned container {ContainerId} ({State})")]
    private partial void LogReaped(string containerId, string state);
}
