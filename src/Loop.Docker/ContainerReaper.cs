namespace Loop.Docker;

using Loop.Docker.Engine;
using Microsoft.Extensions.Logging;

/// <summary>Removes containers left behind by a daemon that crashed mid-run, found by their labels.</summary>
public sealed partial class ContainerReaper(DockerEngineClient client, ILogger<ContainerReaper> logger)
{
    /// <summary>Force-removes every container (running or not) carrying all of <paramref name="labels"/>;
    /// returns how many were removed.</summary>
    public async Task<int> ReapAsync(IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        if (labels.Count == 0)
        {
            // An empty filter matches every container on the host, Loop's or not.
            throw new ArgumentException("at least one label is needed to tell Loop's containers apart", nameof(labels));
        }

        var removed = 0;
        foreach (var container in await client.ListContainersAsync(labels, cancellationToken).ConfigureAwait(false))
        {
            await client.RemoveAsync(container.Id, force: true, cancellationToken).ConfigureAwait(false);
            LogReaped(container.Id, container.State);
            removed++;
        }

        return removed;
    }

    [LoggerMessage(LogLevel.Information, "Reaped orphaned container {ContainerId} ({State})")]
    private partial void LogReaped(string containerId, string state);
}
