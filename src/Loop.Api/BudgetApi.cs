namespace Loop.Api;

using System.Text.Json;
using System.Text.Json.Serialization;
using Loop.Domain.Budgets;
using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

/// <summary>The budget endpoints: the same three on a channel, a task and a connector, and the list.</summary>
public static class BudgetApi
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var budgets = app.ServiceProvider.GetRequiredService<BudgetService>();
        var json = BudgetJsonContext.Default;

        foreach (var (scope, path, what) in new[]
        {
            (BudgetScope.Channel, "/api/channels/{id}/budget", "Channel"),
            (BudgetScope.Task, "/api/tasks/{id}/budget", "Task"),
            (BudgetScope.Connector, "/api/connectors/{id}/budget", "Connector"),
        })
        {
            app.MapGet(path, async (string id, HttpContext http, CancellationToken ct) =>
                Results.Json(BudgetDto.From(await budgets.GetAsync(ApiCallers.Of(http), scope, id, ct)), json.BudgetDto))
                .WithName($"Get{what}Budget")
                .WithSummary($"The {what.ToLowerInvariant()}'s budget: its limits, what it spent this UTC day and month, and when each resets")
                .Produces<BudgetDto>();

            app.MapPut(path, async (string id, HttpRequest request, CancellationToken ct) =>
            {
                var body = await ApiErrors.ReadBodyAsync(request, json.BudgetRequest, ct);
                var change = new BudgetChange(body.DailyUsd, body.MonthlyUsd);
                return Results.Json(BudgetDto.From(await budgets.SetAsync(ApiCallers.Of(request.HttpContext), scope, id, change, ct)), json.BudgetDto);
            })
                .WithName($"Set{what}Budget")
                .WithSummary($"Set the {what.ToLowerInvariant()}'s daily and monthly limits in USD (null or left out: no limit)")
                .JsonBody<BudgetRequest>()
                .Produces<BudgetDto>();

            app.MapDelete(path, async (string id, HttpContext http, CancellationToken ct) =>
                Results.Json(BudgetDto.From(await budgets.SetAsync(ApiCallers.Of(http), scope, id, new BudgetChange(null, null), ct)), json.BudgetDto))
                .WithName($"Delete{what}Budget")
                .WithSummary($"Remove the {what.ToLowerInvariant()}'s limits")
                .Produces<BudgetDto>();
        }

        app.MapGet("/api/budgets", async (HttpContext http, CancellationToken ct) =>
            Results.Json((await budgets.ListAsync(ApiCallers.Of(http), ct)).Select(BudgetDto.From).ToList(), json.ListBudgetDto))
            .WithName("ListBudgets")
            .WithSummary("Every budget with a limit, with what its channel, task or connector spent")
            .Produces<List<BudgetDto>>();
    }
}

public sealed record BudgetRequest(decimal? DailyUsd, decimal? MonthlyUsd);

/// <param name="Spent">"daily" or "monthly" when that limit is reached (runs are refused), else null.</param>
/// <param name="RemainingUsd">What may still be spent before a limit is reached; null without limits.</param>
public sealed record BudgetDto(
    string Scope, string Id, string Name, decimal? DailyUsd, decimal? MonthlyUsd,
    decimal SpentTodayUsd, decimal SpentThisMonthUsd, DateTimeOffset DayResetsAt, DateTimeOffset MonthResetsAt,
    decimal? RemainingUsd, string? Spent)
{
    public static BudgetDto From(BudgetStatus s) => new(
        s.Budget.Key.Scope.ToWire(), s.Budget.Key.Id, s.Name, s.Limits.DailyUsd, s.Limits.MonthlyUsd,
        s.DaySpent, s.MonthSpent, s.ResetsAt(BudgetPeriod.Day), s.ResetsAt(BudgetPeriod.Month),
        s.Remaining, s.Exhausted?.Word());
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(BudgetRequest))]
[JsonSerializable(typeof(BudgetDto))]
[JsonSerializable(typeof(List<BudgetDto>))]
public sealed partial class BudgetJsonContext : JsonSerializerContext;
