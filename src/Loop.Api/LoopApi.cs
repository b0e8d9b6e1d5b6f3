namespace Loop.Api;

using System.Globalization;
using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

/// <summary>The REST API. Each endpoint is a thin call into one of the node's services.</summary>
public static class LoopApi
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var channels = app.ServiceProvider.GetRequiredService<ChannelService>();
        var health = app.ServiceProvider.GetRequiredService<NodeHealth>();
        var events = app.ServiceProvider.GetRequiredService<ILoopEvents>();
        var json = ApiJsonContext.Default;

        // Whether the parts are up is anyone's to know; the details (pid, paths, error texts) are for users.
        // HEAD too: load balancers and uptime checks probe with it.
        app.MapMethods("/api/health", [HttpMethods.Get, HttpMethods.Head], (HttpContext http) => !ApiCallers.IsUser(http)
            ? Results.Json(PublicHealthDto.From(health.Report()), json.PublicHealthDto)
            : Results.Json(HealthDto.From(health.Report()), json.HealthDto))
            .WithSummary("Whether the node and its parts are up")
            .WithDescription("Anyone may ask: status and components. Users also get version, node, store, Docker engine, agent image, queue, warnings and recent problems.")
            .Produces<HealthDto>();

        app.MapPost("/api/channels", async (HttpRequest request, CancellationToken ct) =>
        {
            var body = await ApiErrors.ReadBodyAsync(request, json.CreateChannelRequest, ct);
            var caller = ApiCallers.Of(request.HttpContext);
            var (channel, created) = await channels.EnsureChannelAsync(caller, body.DirPath, body.Name, body.Mode, body.Model, ct);
            var dto = ChannelDto.From(await channels.GetChannelOverviewAsync(caller, channel.Id, ct));
            return created
                ? Results.Json(dto, json.ChannelDto, statusCode: StatusCodes.Status201Created)
                : Results.Json(dto, json.ChannelDto);
        })
            .WithName("CreateChannel")
            .WithSummary("Register the channel of a project directory (201), or get the one it has (200)")
            .JsonBody<CreateChannelRequest>()
            .Produces<ChannelDto>(StatusCodes.Status201Created)
            .Produces<ChannelDto>();

        // Still a plain array (existing clients read one); the count for paging goes in a header.
        app.MapGet("/api/channels", async (string? limit, string? offset, string? q, HttpContext http, CancellationToken ct) =>
        {
            var page = await channels.ListChannelOverviewsAsync(ApiCallers.Of(http), q, ApiErrors.Whole("limit", limit), ApiErrors.Whole("offset", offset) ?? 0, ct);
            http.Response.Headers["X-Total-Count"] = page.Total.ToString(CultureInfo.InvariantCulture);
            return Results.Json(page.Channels.Select(ChannelDto.From).ToList(), json.ListChannelDto);
        })
            .WithName("ListChannels")
            .WithSummary("Channels, oldest first; q filters by name or directory, X-Total-Count counts the matches")
            .Produces<List<ChannelDto>>();

        app.MapGet("/api/channels/{id}", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(ChannelDto.From(await channels.GetChannelOverviewAsync(ApiCallers.Of(http), id, ct)), json.ChannelDto))
            .WithName("GetChannel")
            .WithSummary("One channel, with its queue and last run")
            .Produces<ChannelDto>();

        // PUT as well as PATCH: seed 002's clients send PUT; both change only the fields given.
        app.MapMethods("/api/channels/{id}", [HttpMethods.Patch, HttpMethods.Put], async (string id, HttpRequest request, CancellationToken ct) =>
        {
            var body = await ApiErrors.ReadBodyAsync(request, json.ChangeChannelRequest, ct);
            return Results.Json(ChannelDto.From(await channels.UpdateChannelAsync(ApiCallers.Of(request.HttpContext), id, new ChannelChange(body.Name, body.DirPath, body.Mode, body.Model, body.Progress), ct)), json.ChannelDto);
        })
            .WithName("ChangeChannel")
            .WithSummary("Rename a channel, move it to another directory (forgetting its session), or change its mode or model (\"\" for the configured one); 409 while a run works in it, or when another channel has the directory")
            .JsonBody<ChangeChannelRequest>()
            .Produces<ChannelDto>();

        app.MapDelete("/api/channels/{id}", async (string id, HttpContext http, CancellationToken ct) =>
        {
            await channels.DeleteChannelAsync(ApiCallers.Of(http), id, ct);
            return Results.NoContent();
        })
            .WithName("DeleteChannel")
            .WithSummary("Delete a channel with its messages, runs, tasks and tokens (409 while it has work)")
            .Produces(StatusCodes.Status204NoContent);

        app.MapPost("/api/channels/{id}/session/reset", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(ChannelDto.From(await channels.ResetSessionAsync(ApiCallers.Of(http), id, ct)), json.ChannelDto))
            .WithName("ResetChannelSession")
            .WithSummary("Forget the channel's Claude session: its next run starts a new conversation (409 while a run is queued or running)")
            .Produces<ChannelDto>();

        app.MapPost("/api/channels/{id}/fork", async (string id, HttpRequest request, CancellationToken ct) =>
        {
            // The body is optional: a POST with none names the fork after its parent.
            var empty = request.ContentLength == 0 || (request.ContentLength is null && string.IsNullOrEmpty(request.ContentType));
            var body = empty ? new ForkChannelRequest(null) : await ApiErrors.ReadBodyAsync(request, json.ForkChannelRequest, ct);
            var caller = ApiCallers.Of(request.HttpContext);
            var fork = await channels.ForkAsync(caller, id, body.Name, body.Worktree ?? false, ct);
            return Results.Json(ChannelDto.From(await channels.GetChannelOverviewAsync(caller, fork.Id, ct)), json.ChannelDto, statusCode: StatusCodes.Status201Created);
        })
            .WithName("ForkChannel")
            .WithSummary("A new channel that starts from this one's conversation as it is now (its first run forks the Claude session) and works in the same directory, "
                + "or with \"worktree\": true in a git worktree of its own made on its first run; the original goes on unchanged")
            .JsonBody<ForkChannelRequest>()
            .Produces<ChannelDto>(StatusCodes.Status201Created);

        app.MapDelete("/api/channels/{id}/worktree", async (string id, bool? force, HttpContext http, CancellationToken ct) =>
            Results.Json(ChannelDto.From(await channels.RemoveWorktreeAsync(ApiCallers.Of(http), id, force ?? false, ct)), json.ChannelDto))
            .WithName("RemoveChannelWorktree")
            .WithSummary("Remove the git worktree a fork works in (its branch stays; its next run makes it again). 409 while a run is queued or running, "
                + "and while it has changes not committed unless ?force=true")
            .Produces<ChannelDto>();

        // Kept a GET for existing clients; each call mints a new, separately revocable token.
        app.MapGet("/api/channels/{id}/token", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(new ChannelTokenDto(id, await channels.CreateChannelTokenAsync(ApiCallers.Of(http), ApiCallers.PrincipalOf(http)!, id, ct)), json.ChannelTokenDto))
            .WithName("CreateChannelToken")
            .WithSummary("Mint a channel token, scoped to this channel (each call a new one)")
            .Produces<ChannelTokenDto>();

        app.MapDelete("/api/channels/{id}/tokens", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(new RevokedTokensDto(id, await channels.RevokeChannelTokensAsync(ApiCallers.Of(http), id, ct)), json.RevokedTokensDto))
            .WithName("RevokeChannelTokens")
            .WithSummary("Revoke every token of the channel")
            .Produces<RevokedTokensDto>();

        app.MapPost("/api/channels/{id}/messages", async (string id, HttpRequest request, CancellationToken ct) =>
        {
            var body = await ApiErrors.ReadBodyAsync(request, json.PostMessageRequest, ct);
            var message = await channels.PostMessageAsync(ApiCallers.Of(request.HttpContext), id, body.Author, body.Content, ct);
            return Results.Json(MessageDto.From(message), json.MessageDto, statusCode: StatusCodes.Status202Accepted);
        })
            .WithName("PostMessage")
            .WithSummary("Post a message: it is stored, then the channel's agent answers it in a run")
            .JsonBody<PostMessageRequest>()
            .Produces<MessageDto>(StatusCodes.Status202Accepted);

        app.MapGet("/api/channels/{id}/messages", async (string id, string? after, string? before, string? limit, string? latest, HttpContext http, CancellationToken ct) =>
        {
            var caller = ApiCallers.Of(http);
            var messages = ApiErrors.Whole("latest", latest) is { } last
                ? await channels.ListLatestMessagesAsync(caller, id, ApiErrors.WholeLong("before", before), last, ct)
                : await channels.ListMessagesAsync(caller, id, ApiErrors.WholeLong("after", after) ?? 0, ApiErrors.Whole("limit", limit) ?? 100, ct);
            return Results.Json(messages.Select(MessageDto.From).ToList(), json.ListMessageDto);
        })
            .WithName("ListMessages")
            .WithSummary("The conversation, oldest first; ?latest=N gives its last N messages (before a message id with &before=)")
            .Produces<List<MessageDto>>();

        app.MapGet("/api/channels/{id}/runs", async (string id, string? before, string? limit, HttpContext http, CancellationToken ct) =>
            Results.Json((await channels.ListRunsAsync(ApiCallers.Of(http), id, ApiErrors.Whole("limit", limit) ?? 50, before, ct)).Select(RunDto.From).ToList(), json.ListRunDto))
            .WithName("ListChannelRuns")
            .WithSummary("The channel's runs, newest first")
            .Produces<List<RunDto>>();

        app.MapGet("/api/runs", async (string? channel_id, string? task_id, string? status, string? before, string? limit, HttpContext http, CancellationToken ct) =>
            Results.Json((await channels.ListRecentRunsAsync(ApiCallers.Of(http), channel_id, task_id, status, ApiErrors.Whole("limit", limit) ?? 50, before, ct)).Select(RunDto.From).ToList(), json.ListRunDto))
            .WithName("ListRuns")
            .WithSummary("Recent runs of every channel, newest first; status, channel_id and task_id filter, before (a run id) pages back")
            .Produces<List<RunDto>>();

        app.MapGet("/api/runs/{id}", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(RunDto.From(await channels.GetRunAsync(ApiCallers.Of(http), id, ct)), json.RunDto))
            .WithName("GetRun")
            .WithSummary("One run: status, prompt, times, reply, error and usage")
            .Produces<RunDto>();

        app.MapPost("/api/runs/{id}/cancel", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(RunDto.From(await channels.CancelRunAsync(ApiCallers.Of(http), id, ct)), json.RunDto, statusCode: StatusCodes.Status202Accepted))
            .WithName("CancelRun")
            .WithSummary("Stop a queued or running run and its container (409 once it ended)")
            .Produces<RunDto>(StatusCodes.Status202Accepted);

        TaskApi.Map(app);
        ConnectorApi.Map(app);
        HookApi.Map(app);
        UsageApi.Map(app);
        BudgetApi.Map(app);
        RuntimeApi.Map(app);

        app.MapGet("/api/events/recent", (string? limit, HttpContext http) =>
        {
            ApiCallers.Of(http).EnsureUser("read the feed of every channel");
            var count = Math.Clamp(ApiErrors.Whole("limit", limit) ?? 100, 1, LoopEventHub.RecentLimit);
            return Results.Json(events.Recent(count).Select(EventDto.From).ToList(), json.ListEventDto);
        })
            .WithName("ListRecentEvents")
            .WithSummary("The kept events, newest first")
            .Produces<List<EventDto>>();

        app.MapGet("/api/events", async (string? after, HttpContext context, CancellationToken ct) =>
        {
            ApiCallers.Of(context).EnsureUser("follow the live feed of every channel");
            // Server-sent events. Each has an id "<epoch>.<seq>"; a client that reconnects with it (the
            // Last-Event-ID header, or ?after=) first gets what it missed. After a daemon restart the
            // epoch differs, and it gets everything kept since the start.
            var resumeFrom = context.Request.Headers["Last-Event-ID"].ToString() is { Length: > 0 } header ? header : after;
            long? afterSeq = null;
            if (!string.IsNullOrEmpty(resumeFrom))
            {
                var dot = resumeFrom.LastIndexOf('.');
                afterSeq = dot > 0 && resumeFrom[..dot] == events.Epoch && long.TryParse(resumeFrom[(dot + 1)..], out var seq) ? seq : 0;
            }
            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-cache";
            await context.Response.WriteAsync(": connected\n\n", ct);
            await context.Response.Body.FlushAsync(ct);
            try
            {
                await foreach (var item in events.FollowAsync(afterSeq, ct))
                {
                    var data = System.Text.Json.JsonSerializer.Serialize(EventDto.From(item), json.EventDto);
                    await context.Response.WriteAsync($"id: {item.Id}\nevent: {item.Kind}\ndata: {data}\n\n", ct);
                    await context.Response.Body.FlushAsync(ct);
                }
                // The hub cut this client off: it fell too far behind. No id, so an EventSource
                // reconnects (after a second) with the id of the last event it did get.
                await context.Response.WriteAsync(
                    "retry: 1000\nevent: feed.behind\ndata: {\"text\":\"this client fell too far behind and was cut off: reconnect with Last-Event-ID to resume\"}\n\n", ct);
                await context.Response.Body.FlushAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // the client went away
            }
        })
            .WithName("FollowEvents")
            .WithSummary("The live feed as server-sent events; Last-Event-ID (or ?after=) first replays what was missed")
            .Produces<EventDto>(StatusCodes.Status200OK, "text/event-stream");

        app.MapFallback("/api/{**rest}", (HttpContext context) =>
            Results.Problem(statusCode: 404, title: "Not found",
                detail: $"no API endpoint {context.Request.Method} {context.Request.Path}; see the README for the list"))
            .ExcludeFromDescription();
    }
}
