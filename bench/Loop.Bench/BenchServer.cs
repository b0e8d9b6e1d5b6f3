namespace Loop.Bench;

using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

/// <summary><c>serve</c>: Loop's REST API over a node whose sandbox does no Docker work, so (c) can
/// load the HTTP path with runs that cost nothing but Loop's own work. Stops on SIGTERM or Ctrl-C.</summary>
public static class BenchServer
{
    public static async Task<int> RunAsync(BenchArgs args, CancellationToken cancellationToken)
    {
        var time = TimeProvider.System;
        var (options, _) = BenchNode.Options(args.Get("home"), args.Get("node", "loop-bench-serve"), new Dictionary<string, string>(), new InstantSandbox(time));
        await using var host = BenchNode.Host(options, time, $"127.0.0.1:{args.Get("port")}");
        await host.StartAsync(cancellationToken);
        await host.WaitForShutdownAsync(cancellationToken);
        return 0;
    }
}
