namespace Loop.Api;

using Loop.Grains;
using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

/// <summary>The task and template endpoints: thin calls into <see cref="TaskService"/>.</summary>
public static class TaskApi
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var tasks = app.ServiceProvider.GetRequiredService<TaskService>();
        var json = ApiJsonContext.Default;

        app.MapPost("/api/tasks", async (HttpRequest request, CancellationToken ct) =>
        {
            var body = await ApiErrors.ReadBodyAsync(request, json.NewTaskRequest, ct);
            var task = await tasks.CreateAsync(ApiCallers.Of(request.HttpContext), body, ct);
            return Results.Json(TaskDto.From(task), json.TaskDto, statusCode: StatusCodes.Status201Created);
        });

        app.MapGet("/api/tasks", async (string? channel_id, HttpContext http, CancellationToken ct) =>
            Results.Json((await tasks.ListAsync(ApiCallers.Of(http), channel_id, ct)).Select(TaskDto.From).ToList(), json.ListTaskDto));

        app.MapGet("/api/tasks/{id}", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(TaskDto.From(await tasks.GetAsync(ApiCallers.Of(http), id, ct)), json.TaskDto));

        app.MapMethods("/api/tasks/{id}", ["PATCH"], async (string id, HttpRequest request, CancellationToken ct) =>
        {
            var body = await ApiErrors.ReadBodyAsync(request, json.TaskChangeRequest, ct);
            return Results.Json(TaskDto.From(await tasks.UpdateAsync(ApiCallers.Of(request.HttpContext), id, body, ct)), json.TaskDto);
        });

        app.MapDelete("/api/tasks/{id}", async (string id, HttpContext http, CancellationToken ct) =>
        {
            await tasks.DeleteAsync(ApiCallers.Of(http), id, ct);
            return Results.NoContent();
        });

        app.MapGet("/api/tasks/{id}/runs", async (string id, string? before, string? limit, HttpContext http, CancellationToken ct) =>
            Results.Json((await tasks.ListRunsAsync(ApiCallers.Of(http), id, ApiErrors.Whole("limit", limit) ?? 50, before, ct)).Select(RunDto.From).ToList(), json.ListRunDto));

        app.MapGet("/api/tasks/{id}/output", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(TaskOutputDto.From(await tasks.GetOutputAsync(ApiCallers.Of(http), id, ct)), json.TaskOutputDto));

        app.MapPost("/api/tasks/{id}/start", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(TaskDto.From(await tasks.StartAsync(ApiCallers.Of(http), id, ct)), json.TaskDto, statusCode: StatusCodes.Status202Accepted));

        app.MapPost("/api/tasks/{id}/stop", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(TaskDto.From(await tasks.StopAsync(ApiCallers.Of(http), id, ct)), json.TaskDto, statusCode: StatusCodes.Status202Accepted));

        app.MapGet("/api/templates", () =>
            Results.Json(tasks.Templates.Select(TemplateDto.From).ToList(), json.ListTemplateDto));

        app.MapPost("/api/channels/{id}/templates/{name}", async (string id, string name, HttpContext http, CancellationToken ct) =>
        {
            var (task, created) = await tasks.AddTemplateAsync(ApiCallers.Of(http), id, name, ct);
            return Results.Json(TaskDto.From(task), json.TaskDto, statusCode: created ? StatusCodes.Status201Created : StatusCodes.Status200OK);
        });
    }
}
