-- Shadow reads for the edge dataset: the reads an application would make, run on both sides while
-- replication carries the load. A timestamptz printed as text depends on the server's TimeZone; a
-- sort on text depends on the collation.
select id, tstz::text as tstz from edge_times order by id limit 50;
select id, ts, d from edge_times order by id limit 50;
select s from edge_strings order by s limit 50;
select count(*) from edge_strings;
