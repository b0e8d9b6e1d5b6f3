namespace Loop.Bench;

/// <summary>How to start each server the benchmarks compare. "{port}" is replaced by a free port.</summary>
public sealed record DaemonCommand(string Name, string File, IReadOnlyList<string> Arguments, IReadOnlyDictionary<string, string> Environment)
{
    /// <summary>The published <c>loop serve</c> with its defaults, on its own Loop home and port.</summary>
    public static DaemonCommand LoopServe(string loopBinary, string home, IReadOnlyDictionary<string, string> settings)
    {
        var environment = new Dictionary<string, string>(settings)
        {
            ["LOOP_HOME"] = home,
            ["LOOP_API_ADDR"] = "127.0.0.1:{port}",
        };
        return new DaemonCommand("loop serve", loopBinary, ["serve"], environment);
    }

    /// <summary>Loop's API and node on the no-Docker sandbox, hosted by this benchmark program (<c>serve</c>).</summary>
    public static DaemonCommand BenchServe(string home) =>
        new("Loop API + InstantSandbox", Path.Combine(AppContext.BaseDirectory, "Loop.Bench"), ["serve", "--home", home, "--port", "{port}"],
            new Dictionary<string, string> { ["LOOP_API_RATE_LIMIT_PER_MINUTE"] = "0" });

    /// <summary>The Node.js baseline (bench/baseline/health-server.js).</summary>
    public static DaemonCommand NodeHealth(string script) =>
        new("node health-server.js", "node", [script, "{port}"], new Dictionary<string, string>());

    public DaemonProcess Start(string logPath) => DaemonProcess.Start(File, Arguments, Environment, logPath);
}
