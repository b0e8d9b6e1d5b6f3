namespace Loop.Bench;

using System.Collections;
using System.Diagnostics;
using Loop.Config;
using Loop.Domain.Agents;
using Loop.Hosting;
using Loop.Runtime;
using Microsoft.Extensions.Logging;

/// <summary>An in-process <see cref="LoopHost"/> hosted as <c>loop serve</c> hosts it: config
/// from a Loop home and LOOP_* variables, the real SQLite store, console logs like the daemon's at its default level.</summary>
public static class BenchNode
{
    /// <param name="home">A fresh Loop home (LOOP_HOME) for this benchmark.</param>
    /// <param name="overrides">LOOP_* settings on top of the process environment.</param>
    public static (LoopNodeOptions Options, LoopConfig Config) Options(string home, string nodeName, IReadOnlyDictionary<string, string> overrides, ISandbox? sandbox)
    {
        Directory.CreateDirectory(home);
        var environment = new Hashtable();
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            environment[entry.Key] = entry.Value;
        }
        environment["LOOP_HOME"] = home;
        if (UnixOwnership.Current().IsRoot)
        {
            // Agents never run as root; a benchmark run as root says who they run as.
            environment["LOOP_CONTAINER_USER"] = "1000:1000";
        }
        foreach (var (key, value) in overrides)
        {
            environment[key] = value;
        }
        var paths = LoopPaths.FromEnvironment(environment);
        var loaded = ConfigLoader.Load(paths, environment);
        var options = new LoopNodeOptions(loaded.Config, paths, nodeName) { ConfigWarnings = loaded.Warnings, Sandbox = sandbox };
        return (options, loaded.Config);
    }

    /// <summary>The node in a host as <c>loop serve</c> builds it (a silo, the API on <paramref name="apiAddr"/>,
    /// by default a free loopback port).</summary>
    public static LoopHost Host(LoopNodeOptions options, TimeProvider time, string? apiAddr = null, Action<ILoggingBuilder>? logging = null) =>
        LoopHost.Build(options with { Config = options.Config with { ApiAddr = apiAddr ?? $"127.0.0.1:{FreePorts.Loopback()}" } }, time, logging ?? (l => LoopLogging.Configure(l, options.Config)));
}

/// <summary>Wall-clock time read from the monotonic stopwatch, so timestamps Loop puts on its events
/// compare exactly with the benchmark's own.</summary>
public sealed class MonotonicTime : TimeProvider
{
    private readonly DateTimeOffset _origin = DateTimeOffset.UtcNow;
    private readonly long _originTicks = Stopwatch.GetTimestamp();

    public override DateTimeOffset GetUtcNow() => _origin + Stopwatch.GetElapsedTime(_originTicks);

    /// <summary>Milliseconds between two <see cref="GetUtcNow"/> readings.</summary>
    public static double Ms(DateTimeOffset from, DateTimeOffset to) => (to - from).TotalMilliseconds;

    public double MsSince(long timestamp, long to) => GetElapsedTime(timestamp, to).TotalMilliseconds;

    /// <summary>The stopwatch timestamp of a <see cref="GetUtcNow"/> reading.</summary>
    public long TimestampOf(DateTimeOffset at) => _originTicks + (long)((at - _origin).TotalSeconds * TimestampFrequency);
}
