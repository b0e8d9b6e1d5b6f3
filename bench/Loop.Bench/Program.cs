namespace Loop.Bench;

/// <summary>
/// Loop's benchmarks, one subcommand each (bench/run.sh calls them in turn; see bench/README.md):
/// <c>orchestration</c> (a), <c>container</c> (b), <c>ingest</c> (c), <c>startup</c> (d), <c>health</c> (e),
/// <c>lateness</c> (f, g: task fire lateness), <c>task-memory</c> (h: RSS with 100,000 tasks),
/// <c>chaos</c> (i: kill -9 during traffic, <c>make chaos</c>),
/// <c>cluster</c> (j: several <c>loop serve</c> nodes on PostgreSQL; <c>--part failover|ingest|lateness|startup</c>),
/// <c>chat-inbound</c> (k: a Telegram, WhatsApp or email message to the container create request),
/// <c>serve</c> (a daemon on the no-Docker sandbox, for c) and <c>report</c> (the summary table).
/// Each measuring subcommand writes its rows as JSON to <c>--out</c>.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] argv)
    {
        if (argv.Length == 0)
        {
            Console.Error.WriteLine("usage: Loop.Bench <orchestration|container|ingest|startup|health|lateness|task-memory|chaos|cluster|chat-inbound|serve|report> [--name value ...]");
            return 2;
        }
        var args = BenchArgs.Parse(argv.Skip(1));
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        try
        {
            return argv[0] switch
            {
                "orchestration" => await OrchestrationBench.RunAsync(args, stop.Token),
                "container" => await ContainerBench.RunAsync(args, stop.Token),
                "ingest" => await IngestBench.RunAsync(args, stop.Token),
                "startup" => await StartupBench.RunAsync(args, stop.Token),
                "health" => await HealthBench.RunAsync(args, stop.Token),
                "lateness" => await LatenessBench.RunAsync(args, stop.Token),
                "task-memory" => await TaskMemoryBench.RunAsync(args, stop.Token),
                "chaos" => await ChaosBench.RunAsync(args, stop.Token),
                "cluster" => await ClusterBench.RunAsync(args, stop.Token),
                "chat-inbound" => await ChatInboundBench.RunAsync(args, stop.Token),
                "serve" => await BenchServer.RunAsync(args, stop.Token),
                "report" => Report.Write(args),
                _ => Usage(argv[0]),
            };
        }
        catch (BenchFailure failure)
        {
            Console.Error.WriteLine($"bench {argv[0]}: {failure.Message}");
            return 1;
        }
    }

    private static int Usage(string command)
    {
        Console.Error.WriteLine($"unknown bench '{command}'");
        return 2;
    }
}

/// <summary>A benchmark could not measure what it should (a run failed, a daemon did not start).</summary>
public sealed class BenchFailure(string message) : Exception(message);

/// <summary><c>--name value</c> pairs.</summary>
public sealed class BenchArgs
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public static BenchArgs Parse(IEnumerable<string> argv)
    {
        var args = new BenchArgs();
        string? name = null;
        foreach (var item in argv)
        {
            if (name is null)
            {
                name = item.StartsWith("--", StringComparison.Ordinal) ? item[2..] : throw new BenchFailure($"expected --name, got '{item}'");
            }
            else
            {
                args._values[name] = item;
                name = null;
            }
        }
        return name is null ? args : throw new BenchFailure($"--{name} needs a value");
    }

    public string Get(string name) => _values.TryGetValue(name, out var value) ? value : throw new BenchFailure($"--{name} is required");

    public string Get(string name, string fallback) => _values.GetValueOrDefault(name, fallback);

    public int Int(string name, int fallback) => _values.TryGetValue(name, out var value) ? int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) : fallback;
}
