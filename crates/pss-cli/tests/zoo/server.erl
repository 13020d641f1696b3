%% server.erl: the zoo protocol (zoo.h) on BEAM, an Erlang process per connection (BEAM's
%% schedulers are pthreads; its processes' stacks live in its heaps). Run with escript.
-module(server).
-export([main/1]).

main(_) ->
    {ok, L} = gen_tcp:listen(0, [binary, {ip, {127, 0, 0, 1}}, {packet, line},
                                 {active, false}, {reuseaddr, true}, {backlog, 128}]),
    {ok, Port} = inet:port(L),
    io:format("pid ~s~nport ~b~nready~n", [os:getpid(), Port]),
    spawn(fun() -> stdin() end),
    accept(L).

stdin() ->
    case io:get_line("") of
        eof -> erlang:halt(0);
        "exit\n" -> erlang:halt(0);
        _ -> stdin()
    end.

accept(L) ->
    {ok, C} = gen_tcp:accept(L),
    Pid = spawn(fun() -> serve(C) end),
    ok = gen_tcp:controlling_process(C, Pid),
    Pid ! go,
    accept(L).

serve(C) ->
    receive go -> ok end,
    loop(C).

loop(C) ->
    case gen_tcp:recv(C, 0) of
        {ok, Line} ->
            N = binary_to_integer(string:trim(Line)),
            Sum = lists:sum([(I * I) rem 7919 || I <- lists:seq(0, N * 100 - 1)]),
            ok = gen_tcp:send(C, io_lib:format("~s ~b~n", [os:getpid(), Sum])),
            loop(C);
        _ ->
            gen_tcp:close(C)
    end.
