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
        })
            .WithName("CreateTask")
            .WithSummary("Schedule a task: cron, interval, once, or a loop that iterates until done")
            .JsonBody<NewTaskRequest>()
            .Produces<TaskDto>(StatusCodes.Status201Created);

        app.MapGet("/api/tasks", async (string? channel_id, HttpContext http, CancellationToken ct) =>
            Results.Json((await tasks.ListAsync(ApiCallers.Of(http), channel_id, ct)).Select(TaskDto.From).ToList(), json.ListTaskDto))
            .WithName("ListTasks")
            .WithSummary("Tasks, of one channel with ?channel_id=")
            .Produces<List<TaskDto>>();

        app.MapGet("/api/tasks/{id}", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(TaskDto.From(await tasks.GetAsync(ApiCallers.Of(http), id, ct)), json.TaskDto))
            .WithName("GetTask")
            .WithSummary("One task")
            .Produces<TaskDto>();

        app.MapMethods("/api/tasks/{id}", ["PATCH"], async (string id, HttpRequest request, CancellationToken ct) =>
        {
            var body = await ApiErrors.ReadBodyAsync(request, json.TaskChangeRequest, ct);
            return Results.Json(TaskDto.From(await tasks.UpdateAsync(ApiCallers.Of(request.HttpContext), id, body, ct)), json.TaskDto);
        })
            .WithName("UpdateTask")
            .WithSummary("Change a task: only the fields given")
            .JsonBody<TaskChangeRequest>()
            .Produces<TaskDto>();

        app.MapDelete("/api/tasks/{id}", async (string id, HttpContext http, CancellationToken ct) =>
        {
            await tasks.DeleteAsync(ApiCallers.Of(http), id, ct);
            return Results.NoContent();
        })
            .WithName("DeleteTask")
            .WithSummary("Delete a task")
            .Produces(StatusCodes.Status204NoContent);

        app.MapGet("/api/tasks/{id}/runs", async (string id, string? before, string? limit, HttpContext http, CancellationToken ct) =>
            Results.Json((await tasks.ListRunsAsync(ApiCallers.Of(http), id, ApiErrors.Whole("limit", limit) ?? 50, before, ct)).Select(RunDto.From).ToList(), json.ListRunDto))
            .WithName("ListTaskRuns")
            .WithSummary("The task's runs, newest first")
            .Produces<List<RunDto>>();

        app.MapGet("/api/tasks/{id}/output", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(TaskOutputDto.From(await tasks.GetOutputAsync(ApiCallers.Of(http), id, ct)), json.TaskOutputDto))
            .WithName("GetTaskOutput")
            .WithSummary("What the task said last: its newest run, or every iteration of a loop task's cycle, oldest first")
            .Produces<TaskOutputDto>();

        app.MapPost("/api/tasks/{id}/start", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(TaskDto.From(await tasks.StartAsync(ApiCallers.Of(http), id, ct)), json.TaskDto, statusCode: StatusCodes.Status202Accepted))
            .WithName("StartTask")
            .WithSummary("Start a new cycle of a loop task from iteration 1 (409 for other tasks, and while it runs)")
            .Produces<TaskDto>(StatusCodes.Status202Accepted);

        app.MapPost("/api/tasks/{id}/stop", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(TaskDto.From(await tasks.StopAsync(ApiCallers.Of(http), id, ct)), json.TaskDto, statusCode: StatusCodes.Status202Accepted))
            .WithName("StopTask")
            .WithSummary("Stop a loop task")
            .Produces<TaskDto>(StatusCodes.Status202Accepted);

        app.MapGet("/api/templates", () =>
            Results.Json(tasks.Templates.Select(TemplateDto.From).ToList(), json.ListTemplateDto))
            .WithName("ListTemplates")
            .WithSummary("The task templates of the config")
            .Produces<List<TemplateDto>>();

        app.MapPost("/api/channels/{id}/templates/{name}", async (string id, string name, HttpContext http, CancellationToken ct) =>
        {
            var (task, created) = await tasks.AddTemplateAsync(ApiCallers.Of(http), id, name, ct);
            return Results.Json(TaskDto.From(task), json.TaskDto, statusCode: created ? StatusCodes.Status201Created : StatusCodes.Status200OK);
        })
            .WithName("AddTemplateTask")
            .WithSummary("Give the channel the task of a template (201), or get the one it has (200)")
            .Produces<TaskDto>(StatusCodes.Status201Created)
            .Produces<TaskDto>();
    }
}
