namespace Loop.Api;

using System.Text.Json;
using System.Text.Json.Serialization;
using Loop.Domain.Runs;
using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

/// <summary>The usage endpoints: tokens and cost of finished runs, overall and broken down.</summary>
public static class UsageApi
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var usage = app.ServiceProvider.GetRequiredService<UsageService>();
        var json = UsageJsonContext.Default;

        app.MapGet("/api/usage", async (string? from, string? to, string? channel_id, HttpContext http, CancellationToken ct) =>
            Results.Json(UsageTotalsDto.From(await usage.GetTotalsAsync(ApiCallers.Of(http), new UsageRequest(from, to, channel_id), ct)), json.UsageTotalsDto))
            .WithName("GetUsage")
            .WithSummary("Tokens and cost of finished runs, from and to a date or time, of one channel with ?channel_id=")
            .Produces<UsageTotalsDto>();

        app.MapGet("/api/usage/daily", async (string? days, string? channel_id, HttpContext http, CancellationToken ct) =>
            Results.Json(Groups(await usage.GetDailyAsync(ApiCallers.Of(http), ApiErrors.Whole("days", days), channel_id, ct)), json.ListUsageGroupDto))
            .WithName("GetDailyUsage")
            .WithSummary("Usage per UTC day of the last ?days=")
            .Produces<List<UsageGroupDto>>();

        MapGroups(app, "/api/usage/models", UsageGrouping.Model, usage)
            .WithName("GetUsageByModel")
            .WithSummary("Usage per model");
        MapGroups(app, "/api/usage/channels", UsageGrouping.Channel, usage)
            .WithName("GetUsageByChannel")
            .WithSummary("Usage per channel");
        MapGroups(app, "/api/usage/tasks", UsageGrouping.Task, usage)
            .WithName("GetUsageByTask")
            .WithSummary("Usage per task (null: chat runs)");

        app.MapGet("/api/usage/calls", async (string? from, string? to, string? channel_id, string? limit, string? before, HttpContext http, CancellationToken ct) =>
        {
            var calls = await usage.ListCallsAsync(ApiCallers.Of(http), new UsageRequest(from, to, channel_id), ApiErrors.Whole("limit", limit), before, ct);
            return Results.Json(calls.Select(UsageCallDto.From).ToList(), json.ListUsageCallDto);
        })
            .WithName("ListUsageCalls")
            .WithSummary("Finished runs one by one with their usage, newest first")
            .Produces<List<UsageCallDto>>();
    }

    private static RouteHandlerBuilder MapGroups(IEndpointRouteBuilder app, string path, UsageGrouping by, UsageService usage) =>
        app.MapGet(path, async (string? from, string? to, string? channel_id, HttpContext http, CancellationToken ct) =>
            Results.Json(Groups(await usage.GetGroupsAsync(ApiCallers.Of(http), by, new UsageRequest(from, to, channel_id), ct)),
                UsageJsonContext.Default.ListUsageGroupDto))
            .Produces<List<UsageGroupDto>>();

    private static List<UsageGroupDto> Groups(IReadOnlyList<UsageGroup> groups) => groups.Select(UsageGroupDto.From).ToList();

}

public sealed record UsageTotalsDto(
    long Runs, long InputTokens, long OutputTokens, long CacheCreationInputTokens, long CacheReadInputTokens, long TotalTokens,
    decimal CostUsd, decimal EstimatedCostUsd, long UnpricedRuns, long NumTurns, long DurationMs)
{
    public static UsageTotalsDto From(UsageTotals t) => new(
        t.Runs, t.InputTokens, t.OutputTokens, t.CacheCreationInputTokens, t.CacheReadInputTokens,
        t.InputTokens + t.OutputTokens + t.CacheCreationInputTokens + t.CacheReadInputTokens,
        t.CostUsd, t.EstimatedCostUsd, t.UnpricedRuns, t.NumTurns, t.DurationMs);
}

/// <summary>One day ("2025-06-01"), model, channel id or task id (null: chat runs, or no model reported).</summary>
public sealed record UsageGroupDto(string? Key, UsageTotalsDto Usage)
{
    public static UsageGroupDto From(UsageGroup g) => new(g.Key, UsageTotalsDto.From(g.Totals));
}

public sealed record UsageCallDto(
    string RunId, string ChannelId, string? TaskId, string Status, string? Model, DateTimeOffset CreatedAt, DateTimeOffset? FinishedAt,
    long InputTokens, long OutputTokens, long CacheCreationInputTokens, long CacheReadInputTokens,
    decimal CostUsd, bool CostEstimated, int NumTurns, long DurationMs)
{
    public static UsageCallDto From(UsageCall c)
    {
        var (r, u) = (c.Run, c.Run.Usage);
        return new(r.Id, r.ChannelId, r.TaskId, r.Status.ToWire(), r.Model, r.CreatedAt, r.FinishedAt,
            u.InputTokens, u.OutputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens,
            c.CostUsd, c.CostEstimated, u.NumTurns, u.DurationMs);
    }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(UsageTotalsDto))]
[JsonSerializable(typeof(List<UsageGroupDto>))]
[JsonSerializable(typeof(List<UsageCallDto>))]
public sealed partial class UsageJsonContext : JsonSerializerContext;
