namespace Loop.Bench;

using System.Collections.Concurrent;
using Loop.Domain.Agents;

/// <summary>
/// A sandbox that does no Docker work: it answers every run at once with the canned stream-json
/// of a minimal successful conversation (init, one assistant message, a result with usage), and
/// notes when Loop called it and when it returned, so the benchmark can split Loop's own overhead
/// from the (here empty) agent run. Reports <c>docker</c> as its kind so Loop prepares the run
/// exactly as it does for a container (mounts, MCP config, Claude state dir).
/// </summary>
public sealed class InstantSandbox(TimeProvider time) : ISandbox
{
    private readonly ConcurrentDictionary<string, (long Called, long Returned)> _calls = new(StringComparer.Ordinal);

    public string Kind => "docker";

    /// <summary>When RunAsync was called and when it returned, per run id, in <see cref="TimeProvider.GetTimestamp"/> ticks.</summary>
    public bool TryTake(string runId, out (long Called, long Returned) call) => _calls.TryRemove(runId, out call);

    public async Task<SandboxExit> RunAsync(SandboxSpec spec, Func<string, ValueTask> onStdoutLine, Action<string>? onStarted, CancellationToken cancellationToken)
    {
        var called = time.GetTimestamp();
        var session = "bench-" + spec.ChannelId;
        onStarted?.Invoke("bench-" + spec.RunId);
        await onStdoutLine($$$"""{"type":"system","subtype":"init","cwd":"{{{spec.WorkDir}}}","session_id":"{{{session}}}","tools":[],"mcp_servers":[{"name":"loop","status":"connected"}],"model":"claude-bench","permissionMode":"bypassPermissions","apiKeySource":"none"}""");
        await onStdoutLine($$$"""{"type":"assistant","message":{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[{"type":"text","text":"ok"}],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}},"session_id":"{{{session}}}"}""");
        await onStdoutLine($$$"""{"type":"result","subtype":"success","is_error":false,"duration_ms":0,"duration_api_ms":0,"num_turns":1,"result":"ok","session_id":"{{{session}}}","total_cost_usd":0.0001,"usage":{"input_tokens":3,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}""");
        _calls[spec.RunId] = (called, time.GetTimestamp());
        return new SandboxExit(0, TimedOut: false, Cancelled: false, OutOfMemory: false, StandardErrorTail: "", ContainerId: "bench-" + spec.RunId);
    }
}
