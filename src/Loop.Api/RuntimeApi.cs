namespace Loop.Api;

using System.Text.Json;
using System.Text.Json.Serialization;
using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

/// <summary>The runtime view: what the daemon is doing now and its runs of the last hour; and the nodes.</summary>
public static class RuntimeApi
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var runtime = app.ServiceProvider.GetRequiredService<RuntimeService>();
        app.MapGet("/api/runtime", async (HttpContext http, CancellationToken ct) =>
        {
            ApiCallers.Of(http).EnsureUser("see the runtime of the whole daemon");
            var report = await runtime.GetReportAsync(ct);
            return Results.Json(RuntimeDto.From(report), RuntimeJsonContext.Default.RuntimeDto);
        })
            .WithName("GetRuntime")
            .WithSummary("What the daemon is doing now, and its runs of the last hour")
            .Produces<RuntimeDto>();

        var cluster = app.ServiceProvider.GetRequiredService<ClusterView>();
        app.MapGet("/api/cluster", async (HttpContext http, CancellationToken ct) =>
        {
            ApiCallers.Of(http).EnsureUser("see the nodes of the cluster");
            return Results.Json(new ClusterDto(await cluster.GetNodesAsync(ct)), RuntimeJsonContext.Default.ClusterDto);
        })
            .WithName("GetCluster")
            .WithSummary("The nodes serving this Loop")
            .Produces<ClusterDto>();
    }
}

/// <summary>The nodes serving this Loop (one, or the cluster's).</summary>
public sealed record ClusterDto(IReadOnlyList<NodeState> Nodes);

public sealed record RuntimeDto(
    string Node, string Version, int Pid, double UptimeSeconds, string Runner, QueueHealth Pool,
    IReadOnlyList<ActorState> Actors, int TasksArmed, IReadOnlyList<MinuteRuns> RunsPerMinute, RunDurations Durations,
    StoreHealth Store, EngineHealth Docker, int EventSubscribers)
{
    public static RuntimeDto From(RuntimeReport r) => new(
        r.Node, r.Version, r.Pid, Math.Round(r.UptimeSeconds, 3), r.Runner, r.Pool, r.Actors, r.TasksArmed,
        r.RunsPerMinute, r.Durations, r.Store, r.Engine, r.EventSubscribers);
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(RuntimeDto))]
[JsonSerializable(typeof(ClusterDto))]
public sealed partial class RuntimeJsonContext : JsonSerializerContext;
